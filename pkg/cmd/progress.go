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
	p   *mpb.Progress
	bar *mpb.Bar
}

func newProgress(w io.Writer, total int) *progress {
	if !isTerminal(w) || total == 0 {
		return &progress{}
	}
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40))
	bar := p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name("exporting "), decor.CountersNoUnit("%d/%d containers")),
		mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.Elapsed(decor.ET_STYLE_GO)),
	)
	return &progress{p: p, bar: bar}
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
