package export

import (
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// A gap is kept in the store beside its log, with the checkpoint that moves past it (so that no
// crash keeps the one without the other), or on its own when no checkpoint is saved.

func storeGap(g Gap) store.Gap { return store.Gap{From: g.From, To: g.To, Reason: g.Reason} }

func storeGaps(gs []Gap) []store.Gap {
	out := make([]store.Gap, 0, len(gs))
	for _, g := range gs {
		out = append(out, storeGap(g))
	}
	return out
}

// RecordGaps keeps gaps of a container found without an export of it (a pod that went before
// its log was read) in the directory.
func (e *Exporter) RecordGaps(t target.Target, gaps []Gap) error {
	return e.Dest.RecordGaps(t.Namespace, t.Pod, t.Container, storeGaps(gaps))
}

// recorded tracks which of an export's gaps went to the store.
type recorded struct {
	// handed counts the gaps given to the log for its next commit.
	handed int
	// open is the index of a gap handed while it was still open (its end unknown), to be
	// recorded again once it is closed; -1 if none.
	open int
}

// handGaps gives the log the gaps found since the last save, to be recorded with its next
// commit; the log keeps them if that commit fails.
func (m *merge) handGaps() {
	if o := m.recorded.open; o >= 0 && o < len(m.res.Gaps) && m.res.Gaps[o].To != nil {
		m.log.AddGaps(storeGap(m.res.Gaps[o]))
		m.recorded.open = -1
	}
	for i := m.recorded.handed; i < len(m.res.Gaps); i++ {
		m.log.AddGaps(storeGap(m.res.Gaps[i]))
		if i == m.gap {
			m.recorded.open = i
		}
	}
	m.recorded.handed = len(m.res.Gaps)
}

// unsavedGaps are the gaps that no saved checkpoint took along: found after the last save, or
// closed after it was saved open. A commit that failed drops the gaps the log held.
func (m *merge) unsavedGaps() []Gap {
	var gs []Gap
	if o := m.recorded.open; o >= 0 && o < m.saved.gaps && m.res.Gaps[o].To != nil {
		gs = append(gs, m.res.Gaps[o])
	}
	return append(gs, m.res.Gaps[m.saved.gaps:]...)
}
