package cmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
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

// The summary's table is aligned as printers.GetNewTabWriter aligns it (kubectl get's columns):
// each column as wide as its widest cell plus tabPadding, at least tabMinWidth; the last column
// unpadded.
const (
	tabMinWidth = 6
	tabPadding  = 3
)

var summaryHeader = []string{"NAMESPACE", "POD", "CONTAINER", "LINES", "BYTES", "STATUS"}

// summaryCells are a row's cells, in the order of summaryHeader.
func summaryCells(c *ContainerSummary, cells []string) []string {
	return append(cells[:0], c.Namespace, c.Pod, c.Container, strconv.FormatInt(c.Lines, 10), strconv.FormatInt(c.Bytes, 10), c.Status)
}

// writeTable writes the rows under summaryHeader, none at all (no header) if there are none. A
// tabwriter would hold every cell of every row until it knows the widths, a second copy of the
// summary: the widths are measured in a first pass over the rows instead, and each row is written
// out as it is formatted.
func writeTable(w io.Writer, rows []ContainerSummary) error {
	if len(rows) == 0 {
		return nil
	}
	widths := make([]int, len(summaryHeader)-1)
	measure := func(cells []string) {
		for i := range widths {
			widths[i] = max(widths[i], utf8.RuneCountInString(cells[i]))
		}
	}
	measure(summaryHeader)
	var cells []string
	for i := range rows {
		cells = summaryCells(&rows[i], cells)
		measure(cells)
	}
	for i := range widths {
		widths[i] = max(widths[i]+tabPadding, tabMinWidth)
	}
	bw := bufio.NewWriter(w)
	line := func(cells []string) {
		for i, width := range widths {
			bw.WriteString(cells[i])
			for n := width - utf8.RuneCountInString(cells[i]); n > 0; n-- {
				bw.WriteByte(' ')
			}
		}
		bw.WriteString(cells[len(widths)])
		bw.WriteByte('\n')
	}
	line(summaryHeader)
	for i := range rows {
		cells = summaryCells(&rows[i], cells)
		line(cells)
	}
	return bw.Flush()
}

// jsonContainers is how the JSON of a Summary begins, up to its rows.
const jsonContainers = "{\n  \"containers\": ["

// writeJSON writes s as a json.Encoder indenting by two spaces writes it, one row at a time:
// encoding it whole holds it twice more (compact, then indented), megabytes for tens of thousands
// of containers.
func writeJSON(w io.Writer, s Summary) error {
	rows := s.Containers
	if rows != nil {
		s.Containers = []ContainerSummary{}
	}
	head, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	rest, ok := bytes.CutPrefix(head, []byte(jsonContainers+"]"))
	if rows == nil {
		// "containers": null
		_, err := w.Write(append(head, '\n'))
		return err
	}
	if !ok {
		return fmt.Errorf("the summary's JSON does not begin with its containers: %.40q", head)
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(jsonContainers)
	for i := range rows {
		row, err := json.MarshalIndent(&rows[i], "    ", "  ")
		if err != nil {
			return err
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		bw.Write(row)
	}
	if len(rows) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteByte(']')
	bw.Write(rest)
	bw.WriteByte('\n')
	return bw.Flush()
}
