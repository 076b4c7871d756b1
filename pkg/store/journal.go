package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// journalFile is the run journal: one JSON line when a run starts and one when it ends.
const journalFile = metaDir + "/journal.jsonl"

// Run is a line of the run journal. A run appends one with Event "start" once it holds the
// directory and one with Event "end" (the same ID, End, Totals and ExitCode set) when it is done:
// a run killed before its end leaves its start, so that it is not mistaken for none.
type Run struct {
	ID    string     `json:"id"`
	Event string     `json:"event"`
	Mode  string     `json:"mode"`
	Start time.Time  `json:"start"`
	End   *time.Time `json:"end,omitempty"`
	// Who ran it; never a credential.
	Who Who `json:"who"`
	// Config is the configuration file the selections came from, if any.
	Config string `json:"config,omitempty"`
	// Shard is the run's shard (as "1/3") when it was sharded: shards run side by side, so a
	// run without an end counts as killed only once a later run of its own shard started.
	Shard    string      `json:"shard,omitempty"`
	Selected []Selection `json:"selected,omitempty"`
	Totals   *Totals     `json:"totals,omitempty"`
	ExitCode *int        `json:"exitCode,omitempty"`
	Error    string      `json:"error,omitempty"`
}

// Run events.
const (
	RunStart = "start"
	RunEnd   = "end"
)

// Who says who ran a run.
type Who struct {
	Context string   `json:"context,omitempty"`
	Cluster string   `json:"cluster,omitempty"`
	User    string   `json:"user,omitempty"`
	As      string   `json:"as,omitempty"`
	AsGroup []string `json:"asGroups,omitempty"`
	Host    string   `json:"host,omitempty"`
}

// Selection is one selection of a run: where, and which pods and containers.
type Selection struct {
	Namespace         string   `json:"namespace,omitempty"`
	AllNamespaces     bool     `json:"allNamespaces,omitempty"`
	Pods              []string `json:"pods,omitempty"`
	ExcludePods       []string `json:"excludePods,omitempty"`
	Containers        []string `json:"containers,omitempty"`
	ExcludeContainers []string `json:"excludeContainers,omitempty"`
	LabelSelector     string   `json:"labelSelector,omitempty"`
	FieldSelector     string   `json:"fieldSelector,omitempty"`
}

// Totals are what a run did.
type Totals struct {
	Containers int   `json:"containers"`
	Lines      int64 `json:"lines"`
	Bytes      int64 `json:"bytes"`
	Gaps       int   `json:"gaps"`
	Failed     int   `json:"failed"`
	// FailedNamespaces could not be read.
	FailedNamespaces int `json:"failedNamespaces,omitempty"`
}

// StartRun appends r (Event "start") to the journal and makes it the run whose ID the gaps found
// from now on carry. It costs one write and one sync per run.
func (d *Dir) StartRun(r Run) error {
	r.Event = RunStart
	d.mu.Lock()
	d.run = r.ID
	d.mu.Unlock()
	return d.appendJournal(r)
}

// EndRun appends r (Event "end") to the journal. Called before Close, after the run's last
// commit.
func (d *Dir) EndRun(r Run) error {
	r.Event = RunEnd
	return d.appendJournal(r)
}

func (d *Dir) runID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.run
}

func (d *Dir) appendJournal(r Run) error {
	b, err := jsonLines([]Run{r})
	if err != nil {
		return err
	}
	d.journalMu.Lock()
	defer d.journalMu.Unlock()
	if d.journal == nil {
		// The lines are not needed to append, only where the complete ones end.
		j, err := readJSONL(d, journalFile, func(int, []byte) error { return nil })
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.journal = j
		d.mu.Unlock()
	}
	if err := d.journal.append(b, 1); err != nil {
		return fmt.Errorf("writing the run journal: %w", err)
	}
	return nil
}

// TrimJournal removes the runs that ended (or, never ended, started) before t, replacing the
// journal atomically. Lines that do not parse are kept.
func (d *Dir) TrimJournal(t time.Time) error {
	d.journalMu.Lock()
	defer d.journalMu.Unlock()
	data, err := d.fs.ReadFile(journalFile)
	if err != nil {
		return nil // no journal yet
	}
	last := map[string]time.Time{} // by run: when it was last heard of
	_ = scanData(data, func(_ int, line []byte) error {
		var r Run
		if json.Unmarshal(line, &r) == nil {
			at := r.Start
			if r.End != nil {
				at = *r.End
			}
			if at.After(last[r.ID]) {
				last[r.ID] = at
			}
		}
		return nil
	})
	var keep []byte
	lines := 0
	_ = scanData(data, func(_ int, line []byte) error {
		var r Run
		if json.Unmarshal(line, &r) == nil && last[r.ID].Before(t) {
			return nil
		}
		keep = append(append(keep, line...), '\n')
		lines++
		return nil
	})
	if len(keep) == len(data) {
		return nil
	}
	if d.journal == nil {
		j, err := readJSONL(d, journalFile, func(int, []byte) error { return nil })
		if err != nil {
			return err
		}
		d.journal = j
	}
	return d.journal.replace(keep, lines)
}

// MarkKilled sets the state of each unfinished run that a later run of its shard followed (the
// lock, or the shard's lease, let none start while it ran) to RunKilled.
func MarkKilled(runs []RunRecord) {
	for i := range runs {
		if runs[i].State != RunUnfinished {
			continue
		}
		for _, later := range runs[i+1:] {
			if later.Shard == runs[i].Shard {
				runs[i].State = RunKilled
				break
			}
		}
	}
}
