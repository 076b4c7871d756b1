package cmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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
	rows := s.Containers
	s.Containers = []ContainerSummary{}
	totals, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(totals, []byte(summaryHead+"]")) {
		return fmt.Errorf("summary encoded as %.40q", totals)
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(summaryHead)
	var row bytes.Buffer
	for i := range rows {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		b, err := json.Marshal(&rows[i])
		if err != nil {
			return err
		}
		row.Reset()
		if err := json.Indent(&row, b, "    ", "  "); err != nil {
			return err
		}
		bw.Write(row.Bytes())
	}
	if len(rows) > 0 {
		bw.WriteString("\n  ")
	}
	bw.Write(totals[len(summaryHead):])
	bw.WriteByte('\n')
	return bw.Flush()
}
