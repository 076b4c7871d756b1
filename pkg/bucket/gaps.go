package bucket

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// gapsObject is a run's gaps of one container, saved as one object: objects cannot be
// appended to, and every run's gaps keep their own key.
type gapsObject struct {
	Run  string      `json:"run,omitempty"`
	Gaps []store.Gap `json:"gaps"`
}

// RecordGaps saves gaps of a container found without a commit of its log.
func (d *Dest) RecordGaps(namespace, pod, container string, gaps []store.Gap) error {
	if len(gaps) == 0 {
		return nil
	}
	rel, err := containerRel(namespace, pod, container)
	if err != nil {
		return err
	}
	return d.saveGaps(rel, gaps)
}

func (d *Dest) saveGaps(rel string, gaps []store.Gap) error {
	d.mu.Lock()
	d.gapSeq++
	run, n := d.run, d.gapSeq
	d.mu.Unlock()
	if run == "" {
		run = "norun"
	}
	now := time.Now().UTC()
	found := make([]store.Gap, len(gaps))
	for i, g := range gaps {
		g.Run = run
		if g.Found.IsZero() {
			g.Found = now
		}
		found[i] = g
	}
	body, err := json.Marshal(gapsObject{Run: run, Gaps: found})
	if err != nil {
		return err
	}
	key := fmt.Sprintf("%s/%s/%s-%06d.json", gapsDir, rel, run, n)
	if err := d.b.Put(d.ctx, d.key(key), body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("saving gaps of %s: %w", rel, err)
	}
	return nil
}

func (d *Dest) runID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.run
}
