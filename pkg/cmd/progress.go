package cmd

import (
	"io"
	"os"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/logexport/kubectl-logexport/pkg/export"
)

// progress shows a bar on stderr while containers are exported, only when stderr is a terminal:
// logs and CI output get the summary alone.
type progress struct {
	w     io.Writer
	term  bool
	p     *mpb.Progress
	bar   *mpb.Bar
	total int64
}

// newProgress returns a progress without a bar, which add starts: the containers may be counted
// as they are listed.
func newProgress(w io.Writer) *progress {
	return &progress{w: w, term: isTerminal(w)}
}

// add counts n more containers; the bar shows once there is one, on a terminal.
func (p *progress) add(n int) {
	if n == 0 || !p.term {
		return
	}
	p.total += int64(n)
	if p.bar == nil {
		// Made with no total, the bar does not complete when its count reaches the total it
		// was made with (wait completes it): the total grows as the containers are listed.
		p.p = mpb.New(mpb.WithOutput(p.w), mpb.WithWidth(40))
		p.bar = p.p.AddBar(0,
			mpb.PrependDecorators(decor.Name("exporting "), decor.CountersNoUnit("%d/%d containers")),
			mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.Elapsed(decor.ET_STYLE_GO)),
		)
	}
	p.bar.SetTotal(p.total, false)
}

func (p *progress) done(export.Result) {
	if p.bar != nil {
		p.bar.Increment()
	}
}

func (p *progress) wait() {
	if p.p != nil {
		p.bar.SetTotal(-1, true)
		p.p.Wait()
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
