package bucket

import (
	"encoding/json"
	"fmt"

	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// StartRun saves r (Event "start") as the run's journal object and makes it the run whose ID
// checkpoints and gaps carry from now on.
func (d *Dest) StartRun(r store.Run) error {
	r.Event = store.RunStart
	d.mu.Lock()
	d.run = r.ID
	d.mu.Unlock()
	return d.putRun(r)
}

// EndRun saves r (Event "end") over the run's start.
func (d *Dest) EndRun(r store.Run) error {
	r.Event = store.RunEnd
	return d.putRun(r)
}

func (d *Dest) putRun(r store.Run) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	key := runsDir + "/" + r.ID + ".json"
	if err := d.b.Put(d.ctx, d.key(key), body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("saving %s: %w", d.URL(key), err)
	}
	return nil
}

// Close ends the use of the destination; every commit is saved when it returns.
func (d *Dest) Close() error { return nil }
