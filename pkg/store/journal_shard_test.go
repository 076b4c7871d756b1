package store

import "testing"

func TestMarkKilled(t *testing.T) {
	tests := []struct {
		name string
		runs []RunRecord
		want []string
	}{
		{"one writer: an unfinished run followed by another was killed",
			[]RunRecord{{Run: Run{ID: "1"}, State: RunUnfinished}, {Run: Run{ID: "2"}, State: RunEnded}, {Run: Run{ID: "3"}, State: RunUnfinished}},
			[]string{RunKilled, RunEnded, RunUnfinished}},
		{"shards side by side: each shard's newest is still running",
			[]RunRecord{{Run: Run{ID: "1", Shard: "0/2"}, State: RunUnfinished}, {Run: Run{ID: "2", Shard: "1/2"}, State: RunUnfinished}},
			[]string{RunUnfinished, RunUnfinished}},
		{"a shard's replica restarted: its older run was killed",
			[]RunRecord{{Run: Run{ID: "1", Shard: "0/2"}, State: RunUnfinished}, {Run: Run{ID: "2", Shard: "1/2"}, State: RunUnfinished}, {Run: Run{ID: "3", Shard: "0/2"}, State: RunUnfinished}},
			[]string{RunKilled, RunUnfinished, RunUnfinished}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			MarkKilled(tt.runs)
			for i, r := range tt.runs {
				if r.State != tt.want[i] {
					t.Errorf("run %s: %s, want %s", r.ID, r.State, tt.want[i])
				}
			}
		})
	}
}
