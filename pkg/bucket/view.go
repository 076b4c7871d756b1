package bucket

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// ContainerRef names a container that has a checkpoint in the bucket.
type ContainerRef struct{ Namespace, Pod, Container string }

// Containers lists the containers that have a checkpoint, sorted.
func (d *Dest) Containers() ([]ContainerRef, error) {
	var out []ContainerRef
	err := d.b.List(d.ctx, d.key(checkpointsDir+"/"), "", func(o objstore.Object) error {
		rel, ok := strings.CutSuffix(strings.TrimPrefix(d.rel(o.Key), checkpointsDir+"/"), ".json")
		parts := strings.Split(rel, "/")
		if !ok || len(parts) != 3 {
			return nil
		}
		if _, err := containerRel(parts[0], parts[1], parts[2]); err != nil {
			return nil
		}
		out = append(out, ContainerRef{parts[0], parts[1], parts[2]})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", d.URL(checkpointsDir), err)
	}
	return out, nil
}

// Inspect reads what the bucket holds, as store.Inspect reads a directory: its logs (from their
// checkpoints) with their gaps, and its runs. It writes nothing.
func (d *Dest) Inspect() (*store.Inventory, error) {
	inv := &store.Inventory{Dir: d.URL(""), Timestamps: d.meta.Timestamps, Logs: []store.StoredLog{}, Runs: []store.RunRecord{}}
	refs, err := d.Containers()
	if err != nil {
		return nil, err
	}
	byKey := map[string]int{}
	for _, r := range refs {
		cp, err := d.Checkpoint(r.Namespace, r.Pod, r.Container)
		if err != nil {
			inv.Warnings = append(inv.Warnings, err.Error())
			continue
		}
		l := store.StoredLog{Namespace: r.Namespace, Pod: r.Pod, Container: r.Container, Lines: cp.Lines, Bytes: cp.Size,
			File: d.URL(logsDir + "/" + r.Namespace + "/" + r.Pod + "/" + r.Container + "/")}
		if !cp.Begin.IsZero() {
			t := cp.Begin.UTC()
			l.First = &t
		}
		if !cp.Last.IsZero() {
			t := cp.Last.UTC()
			l.Last = &t
		}
		byKey[r.Namespace+"/"+r.Pod+"/"+r.Container] = len(inv.Logs)
		inv.Logs = append(inv.Logs, l)
	}
	gapsByRun := map[string]int{}
	err = d.b.List(d.ctx, d.key(gapsDir+"/"), "", func(o objstore.Object) error {
		rel := strings.TrimPrefix(d.rel(o.Key), gapsDir+"/")
		parts := strings.Split(rel, "/")
		if len(parts) != 4 {
			return nil
		}
		data, err := d.b.Get(d.ctx, o.Key)
		if err != nil {
			return fmt.Errorf("reading %s: %w", o.Key, err)
		}
		var g gapsObject
		if err := json.Unmarshal(data, &g); err != nil {
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("%s does not parse: %v", d.URL(d.rel(o.Key)), err))
			return nil
		}
		key := parts[0] + "/" + parts[1] + "/" + parts[2]
		i, ok := byKey[key]
		if !ok {
			// Gaps of a container of which nothing was stored: its log was lost.
			i = len(inv.Logs)
			byKey[key] = i
			inv.Logs = append(inv.Logs, store.StoredLog{Namespace: parts[0], Pod: parts[1], Container: parts[2]})
		}
	gaps:
		for _, gap := range g.Gaps {
			gap.Run = g.Run
			// A gap saved while open is saved again once closed (objects list in the order a
			// run saved them): the last one wins.
			for j, old := range inv.Logs[i].Gaps {
				if old.Run == gap.Run && old.From.Equal(gap.From) && old.Reason == gap.Reason {
					inv.Logs[i].Gaps[j] = gap
					continue gaps
				}
			}
			inv.Logs[i].Gaps = append(inv.Logs[i].Gaps, gap)
			gapsByRun[g.Run]++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", d.URL(gapsDir), err)
	}
	sort.Slice(inv.Logs, func(i, j int) bool {
		a, b := inv.Logs[i], inv.Logs[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Pod != b.Pod {
			return a.Pod < b.Pod
		}
		return a.Container < b.Container
	})
	// Run IDs sort by their start.
	err = d.b.List(d.ctx, d.key(runsDir+"/"), "", func(o objstore.Object) error {
		data, err := d.b.Get(d.ctx, o.Key)
		if err != nil {
			return fmt.Errorf("reading %s: %w", o.Key, err)
		}
		var r store.Run
		if err := json.Unmarshal(data, &r); err != nil || r.ID == "" {
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("%s does not parse", d.URL(d.rel(o.Key))))
			return nil
		}
		state := store.RunUnfinished
		if r.Event == store.RunEnd {
			state = store.RunEnded
		}
		inv.Runs = append(inv.Runs, store.RunRecord{Run: r, State: state, GapsRecorded: gapsByRun[r.ID]})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", d.URL(runsDir), err)
	}
	store.MarkKilled(inv.Runs)
	return inv, nil
}
