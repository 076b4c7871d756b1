package store

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// oldRecordLine is a checkpoint line as write, put and marshalRecords made it before appendRecord.
func oldRecordLine(k containerKey, cp Checkpoint) ([]byte, error) {
	line, err := json.Marshal(record{Pod: k.pod, Container: k.container, Checkpoint: cp})
	return append(line, '\n'), err
}

// TestBreak13AppendRecordSame: appendRecord's line is the old one byte for byte, for any
// checkpoint JSON holds, appended after any prefix; on an error it returns the prefix untouched
// and the very error json.Marshal gives.
func TestBreak13AppendRecordSame(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 13))
	var b []byte
	var want []byte
	for i := range 5000 {
		k := containerKey{breakName(rng, true), breakName(rng, true)}
		cp := breakCheckpoint(rng, i%2 == 0)
		line, oerr := oldRecordLine(k, cp)
		before := len(b)
		nb, err := appendRecord(b, k, cp)
		if (err == nil) != (oerr == nil) || (err != nil && err.Error() != oerr.Error()) {
			t.Fatalf("%d: error %v, want %v", i, err, oerr)
		}
		if err != nil {
			if !bytes.Equal(nb, b) || len(nb) != before {
				t.Fatalf("%d: prefix changed on error", i)
			}
			continue
		}
		b = nb
		want = append(want, line...)
		if !bytes.Equal(b, want) {
			t.Fatalf("%d: line\n%s\nwant\n%s", i, b[before:], line)
		}
	}
}

// Year 10000 in UTC, but 9999 in its own zone: json.Marshal takes it when write() marshals it as
// committed, and fails on it once it comes back from the packed map in UTC.
var break13Edge = time.Date(9999, 12, 31, 23, 30, 0, 0, time.FixedZone("w", -3600))

// TestBreak13PutWriteErrors: put and write (Commit) return json.Marshal's error for a time JSON
// cannot hold, and save nothing.
func TestBreak13PutWriteErrors(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, false, noSync())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l := mustOpenLog(t, d, "ns", "p", "c")
	defer l.Close()
	bad := Checkpoint{Instance: "i", Lines: 1, Last: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	_, merr := json.Marshal(record{Pod: "p", Container: "c", Checkpoint: bad})
	if merr == nil {
		t.Fatal("json.Marshal took year 10000")
	}
	if err := l.Commit(bad); err == nil || err.Error() != merr.Error() {
		t.Errorf("Commit: %v, want %v", err, merr)
	}
	if err := l.cps.put(map[containerKey]Checkpoint{{"p", "c"}: bad, {"p", "a"}: {Instance: "ok"}}); err == nil || err.Error() != merr.Error() {
		t.Errorf("put: %v, want %v", err, merr)
	}
	if _, ok := l.cps.cps.get(containerKey{"p", "a"}); ok {
		t.Error("put stored the good checkpoint of a batch that failed")
	}
}

// TestBreak13MarshalRecordsUnmarshalable: a checkpoint marshalRecords cannot marshal fails it.
// Before appendRecord it left an empty line (read back as a corrupt file); with appendRecord as the
// helper first found it, the line was dropped without a word. The checkpoint gets there by Commit:
// 9999-12-31T23:30-01:00 marshals as committed, and is year 10000 once unpacked in UTC.
func TestBreak13MarshalRecordsUnmarshalable(t *testing.T) {
	good := Checkpoint{Instance: "i", Lines: 2}
	bad := Checkpoint{Instance: "i", Lines: 1, Last: break13Edge}
	m := cpMap{}
	m.put(containerKey{"a", "c"}, good)
	m.put(containerKey{"b", "c"}, bad)
	m.put(containerKey{"c", "c"}, good)
	if b, err := marshalRecords(m); err == nil || !strings.Contains(err.Error(), "b/c") {
		t.Errorf("marshalRecords = %q, %v; want an error naming b/c", b, err)
	}
}

// The same through the store: Commit takes the checkpoint, the rewrite fails and leaves the file
// as it was, every checkpoint line in it.
func TestBreak13CompactUnmarshalable(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, false, noSync())
	if err != nil {
		t.Fatal(err)
	}
	l1 := mustOpenLog(t, d, "ns", "a", "c")
	l2 := mustOpenLog(t, d, "ns", "b", "c")
	if err := l1.Commit(Checkpoint{Instance: "i", Lines: 2}); err != nil {
		t.Fatal(err)
	}
	if err := l2.Commit(Checkpoint{Instance: "i", Lines: 1, Last: break13Edge}); err != nil {
		t.Fatalf("Commit of a time JSON holds in its zone: %v", err)
	}
	c := l1.cps
	name := filepath.Join(dir, filepath.FromSlash(checkpointsPath("ns")))
	before, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	err = c.compact()
	c.mu.Unlock()
	if err == nil {
		t.Error("the rewrite of a checkpoint it cannot marshal did not fail")
	}
	l1.Close()
	l2.Close()
	d.Close()
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, before) || !strings.Contains(string(got), `"pod":"b"`) {
		t.Errorf("checkpoint file after the failed rewrite:\n%q\nwant it as it was:\n%q", got, before)
	}
}
