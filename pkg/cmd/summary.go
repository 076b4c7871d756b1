package cmd

import "fmt"

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
