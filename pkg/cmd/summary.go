package cmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/logexport/kubectl-logexport/pkg/podselect"
)

// --summary values: which containers the summary lists. The totals, failed namespaces and every
// gap and error on stderr are reported whatever it says.
const (
	summaryAll     = "all"
	summaryChanged = "changed"
	summaryNone    = "none"
)

const (
	statusUpToDate = "up to date"
	statusFailed   = "failed"
)

func validateSummary(mode string) error {
	switch mode {
	case summaryAll, summaryChanged, summaryNone:
		return nil
	}
	return fmt.Errorf("invalid --summary %q: use all, changed or none", mode)
}

// changed tells whether a container's row says anything a run from cron must see: lines added, a
// gap, a failure, a container that did not start.
func (c ContainerSummary) changed() bool {
	return c.Status != statusUpToDate || c.Lines > 0 || c.Bytes > 0
}

// only returns the summary with the rows the mode lists; the totals stay those of every container.
func (s Summary) only(mode string) Summary {
	switch mode {
	case summaryNone:
		s.Containers = []ContainerSummary{}
	case summaryChanged:
		rows := []ContainerSummary{}
		for _, c := range s.Containers {
			if c.changed() {
				rows = append(rows, c)
			}
		}
		s.Containers = rows
	}
	return s
}

// summaryHead is how json.MarshalIndent(s, "", "  ") begins for a Summary: Containers is its
// first field.
const summaryHead = "{\n  \"containers\": ["

// writeJSON writes s as a json.Encoder indenting by two spaces would, a row at a time. Encoding
// the summary at once holds it twice more, encoded and then indented: several MiB at 10,000
// containers, at the end of the run, when the run's memory peaks.
func writeJSON(w io.Writer, s Summary) error {
	j := newJSONSummary(w)
	for i := range s.Containers {
		j.row(&s.Containers[i])
	}
	return j.end(s)
}

// jsonSummary writes a Summary as writeJSON does, its rows as they come and the rest at the end.
type jsonSummary struct {
	bw   *bufio.Writer
	rows int
	buf  bytes.Buffer
	err  error
}

func newJSONSummary(w io.Writer) *jsonSummary {
	return &jsonSummary{bw: bufio.NewWriterSize(w, 64<<10)}
}

// row writes the next row; an error is kept for end.
func (j *jsonSummary) row(c *ContainerSummary) {
	if j.err != nil {
		return
	}
	if j.rows == 0 {
		j.bw.WriteString(summaryHead)
	} else {
		j.bw.WriteByte(',')
	}
	j.rows++
	j.bw.WriteString("\n    ")
	b, err := json.Marshal(c)
	if err == nil {
		j.buf.Reset()
		err = json.Indent(&j.buf, b, "    ", "  ")
	}
	if err != nil {
		j.err = err
		return
	}
	if _, err := j.bw.Write(j.buf.Bytes()); err != nil {
		j.err = err
	}
}

// end writes what s holds but its rows (those were written by row) and flushes.
func (j *jsonSummary) end(s Summary) error {
	if j.err != nil {
		return j.err
	}
	s.Containers = []ContainerSummary{}
	totals, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(totals, []byte(summaryHead+"]")) {
		return fmt.Errorf("summary encoded as %.40q", totals)
	}
	if j.rows == 0 {
		j.bw.WriteString(summaryHead)
	} else {
		j.bw.WriteString("\n  ")
	}
	j.bw.Write(totals[len(summaryHead):])
	j.bw.WriteByte('\n')
	return j.bw.Flush()
}

// runSummary gathers a one-shot run's summary from its rows, which come in any order, each with
// its index. Only what is printed at the end is held: the rows the table lists, and with -o json
// the rows with a gap or an error (told on stderr); the JSON rows are written as soon as those
// before them are, so that a run over tens of thousands of containers does not hold them all.
type runSummary struct {
	mode    string
	json    *jsonSummary // nil: the table, printed at the end
	s       Summary
	next    int
	pending map[int]ContainerSummary
}

func (o *Options) newRunSummary() *runSummary {
	r := &runSummary{mode: o.Summary, pending: map[int]ContainerSummary{}}
	if o.Output == "json" {
		r.json = newJSONSummary(o.Out)
	}
	return r
}

// add takes the row of the container with index i.
func (r *runSummary) add(i int, c ContainerSummary) {
	r.pending[i] = c
	for {
		c, ok := r.pending[r.next]
		if !ok {
			return
		}
		delete(r.pending, r.next)
		r.next++
		r.s.count(c)
		listed := r.mode == summaryAll || r.mode == summaryChanged && c.changed()
		switch {
		case r.json != nil && listed:
			r.json.row(&c)
			if c.problem() {
				r.s.Containers = append(r.s.Containers, c)
			}
		case r.json != nil && c.problem(), r.json == nil && (listed || c.problem()):
			r.s.Containers = append(r.s.Containers, c)
		}
	}
}

// problem tells whether the row has a gap or an error, which stderr tells whatever is listed.
func (c ContainerSummary) problem() bool {
	return len(c.Gaps) > 0 || c.Error != ""
}

// summary returns the run's summary: the totals of every row and the namespaces that could not
// be read. Its Containers are only the rows held (see runSummary).
func (r *runSummary) summary(nsErrs []podselect.NamespaceError) Summary {
	s := r.s
	s.Namespaces = namespaceSummaries(nsErrs)
	return s
}
