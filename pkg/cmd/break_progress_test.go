package cmd

import (
	"io"
	"testing"

	"github.com/logexport/kubectl-logexport/pkg/export"
)

// TestProgressCountedAsListed: in the streaming path (Run with one selection) the bar is made
// by the first add(1) and grown by add(1) per container listed, while the first containers are
// already exported. The bar must not complete while containers counted on it are still under
// way: mpb keeps the total a bar was created with as its completion point (SetTotal(n, false)
// does not move it), and a bar made with the first container's total of 1 completed once that
// container was done, the rest of the run's progress not shown.
func TestProgressCountedAsListed(t *testing.T) {
	tests := []struct {
		name         string
		listed, done int
		upfront      bool // every container listed before the first is done
	}{
		{name: "1 of 2 done", listed: 2, done: 1},
		{name: "3 of 10 done", listed: 10, done: 3},
		{name: "listed first, 1 of 2 done", listed: 2, done: 1, upfront: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &progress{w: io.Discard, term: true}
			for i := range tt.listed {
				p.add(1)
				if i < tt.done && !tt.upfront {
					p.done(export.Result{})
				}
			}
			for range tt.done {
				if tt.upfront {
					p.done(export.Result{})
				}
			}
			completed := p.bar.Completed()
			for range tt.listed - tt.done {
				p.done(export.Result{})
			}
			p.wait()
			if completed {
				t.Errorf("bar completed with %d of %d containers done", tt.done, tt.listed)
			}
		})
	}
}
