// Package bucket is the export's destination in an object store: what pkg/store does in a local
// directory, with objects, which cannot be appended to.
//
// Layout under the prefix:
//
//	logexport.json                                   the format and the line mode (as .logexport/meta.json)
//	logs/NS/POD/CONTAINER/DAY/START-END.log.gz       segments: the log's bytes START..END, gzipped
//	checkpoints/NS/POD/CONTAINER.json                 the checkpoint, and the last segment it covers
//	gaps/NS/POD/CONTAINER/RUN-N.json                  gaps found by a run
//	runs/RUN.json                                     the run journal: a run's start, then its end
//
// A container's log is the concatenation of its segments in offset order up to its checkpoint's
// Size. A segment is uploaded before the checkpoint that covers it, so a crash between the two
// leaves a segment past the checkpoint (an orphan) and never a checkpoint past its segments. The
// next writer finds the orphans (listed after the checkpoint's last segment: keys sort by day,
// then offset) and ends its own segments where theirs end, so that it overwrites each with the
// same key and, the merge being exact, the same bytes; an orphan it cannot match is deleted
// before anything that covers its bytes is uploaded, and so is one whose key sorts before a
// segment it uploads (runs that commit at other sizes can name the segment at an offset by
// other days), which the listing after the next checkpoint would not find. So the bucket never holds two segments
// with the same lines, and readers need only the checkpoint to know where a log ends.
//
// One writer per prefix: the caller holds the lock (a Lease) while a Dest is open. A checkpoint
// is saved only over the version its writer read (If-Match), so that a writer that lost its lock
// without knowing it yet cannot save over the next one's; its last segments are then past that
// checkpoint, as a crash leaves them.
package bucket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/logexport/kubectl-logexport/pkg/objstore"
	"github.com/logexport/kubectl-logexport/pkg/store"
)

// FormatVersion is the layout's version, saved in logexport.json.
const FormatVersion = 1

const (
	metaKey        = "logexport.json"
	logsDir        = "logs"
	checkpointsDir = "checkpoints"
	gapsDir        = "gaps"
	runsDir        = "runs"
	segmentSuffix  = ".log.gz"
	// offsetDigits pads offsets so that keys sort by them.
	offsetDigits = 20
)

// Meta is saved in logexport.json.
type Meta struct {
	Version    int  `json:"version"`
	Timestamps bool `json:"timestamps"`
}

// Dest is an export's destination in a bucket.
type Dest struct {
	ctx    context.Context
	b      objstore.Bucket
	prefix string
	meta   Meta

	mu  sync.Mutex
	run string
	// gapSeq numbers the run's gap objects.
	gapSeq int
}

var _ store.Destination = (*Dest)(nil)

// Open opens the destination under prefix, creating its logexport.json if there is none. ctx
// bounds every request made through the Dest.
func Open(ctx context.Context, b objstore.Bucket, prefix string, timestamps bool) (*Dest, error) {
	d := &Dest{ctx: ctx, b: b, prefix: strings.Trim(prefix, "/")}
	data, err := b.Get(ctx, d.key(metaKey))
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		d.meta = Meta{Version: FormatVersion, Timestamps: timestamps}
		body, _ := json.Marshal(d.meta)
		err = b.Put(ctx, d.key(metaKey), body, objstore.PutOptions{IfAbsent: true, ContentType: "application/json"})
		if errors.Is(err, objstore.ErrExists) {
			return Open(ctx, b, prefix, timestamps) // another writer created it first
		}
		if err != nil {
			return nil, fmt.Errorf("creating %s: %w", d.URL(metaKey), err)
		}
		return d, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", d.URL(metaKey), err)
	}
	if err := json.Unmarshal(data, &d.meta); err != nil {
		return nil, fmt.Errorf("reading %s: %w", d.URL(metaKey), err)
	}
	if d.meta.Version > FormatVersion {
		return nil, fmt.Errorf("%s was written by a newer kubectl logexport (format %d, this one knows %d): upgrade it", d.URL(""), d.meta.Version, FormatVersion)
	}
	if d.meta.Timestamps != timestamps {
		return nil, fmt.Errorf("%s holds logs %s; run with%s --timestamps, or export to another prefix", d.URL(""), modeName(d.meta.Timestamps), map[bool]string{true: "", false: "out"}[d.meta.Timestamps])
	}
	return d, nil
}

// ErrNoExport is returned by OpenRead where no export was ever made.
var ErrNoExport = errors.New("holds no export (no logexport.json)")

// OpenRead opens the destination under prefix for reading (status, pull): it writes nothing,
// and takes the line mode from the bucket.
func OpenRead(ctx context.Context, b objstore.Bucket, prefix string) (*Dest, error) {
	d := &Dest{ctx: ctx, b: b, prefix: strings.Trim(prefix, "/")}
	data, err := b.Get(ctx, d.key(metaKey))
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, fmt.Errorf("%s %w", d.URL(""), ErrNoExport)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", d.URL(metaKey), err)
	}
	if err := json.Unmarshal(data, &d.meta); err != nil {
		return nil, fmt.Errorf("reading %s: %w", d.URL(metaKey), err)
	}
	if d.meta.Version > FormatVersion {
		return nil, fmt.Errorf("%s was written by a newer kubectl logexport (format %d, this one knows %d): upgrade it", d.URL(""), d.meta.Version, FormatVersion)
	}
	return d, nil
}

func modeName(ts bool) string {
	if ts {
		return "with timestamps"
	}
	return "without timestamps"
}

// Meta returns the destination's format and line mode.
func (d *Dest) Meta() Meta { return d.meta }

func (d *Dest) key(rel string) string {
	if d.prefix == "" {
		return rel
	}
	return d.prefix + "/" + rel
}

// rel is the key relative to the prefix.
func (d *Dest) rel(key string) string {
	if d.prefix == "" {
		return key
	}
	return strings.TrimPrefix(key, d.prefix+"/")
}

// URL names rel in messages.
func (d *Dest) URL(rel string) string {
	return strings.TrimSuffix(d.b.String()+"/"+d.key(rel), "/")
}

func containerRel(namespace, pod, container string) (string, error) {
	// The same names are refused as in a directory, so that a bucket can be pulled into one.
	if _, err := store.LogPath(namespace, pod, container); err != nil {
		return "", err
	}
	return namespace + "/" + pod + "/" + container, nil
}

// checkpointObject is a checkpoint as saved.
type checkpointObject struct {
	Checkpoint store.Checkpoint `json:"checkpoint"`
	// Segment is the key, relative to the prefix, of the last segment the checkpoint covers; ""
	// while it covers none.
	Segment string `json:"segment,omitempty"`
	// Run is the run that saved it.
	Run string `json:"run,omitempty"`
}

func (d *Dest) readCheckpoint(rel string) (*checkpointObject, error) {
	c, _, err := d.readCheckpointETag(rel)
	return c, err
}

// readCheckpointETag reads a checkpoint with its ETag, "" if there is none.
func (d *Dest) readCheckpointETag(rel string) (*checkpointObject, string, error) {
	data, etag, err := d.b.GetETag(d.ctx, d.key(checkpointsDir+"/"+rel+".json"))
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading the checkpoint of %s: %w", rel, err)
	}
	var c checkpointObject
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", d.URL(checkpointsDir+"/"+rel+".json"), err)
	}
	return &c, etag, nil
}

// Checkpoint returns a container's checkpoint, nil if it has none.
func (d *Dest) Checkpoint(namespace, pod, container string) (*store.Checkpoint, error) {
	rel, err := containerRel(namespace, pod, container)
	if err != nil {
		return nil, err
	}
	c, err := d.readCheckpoint(rel)
	if c == nil || err != nil {
		return nil, err
	}
	return &c.Checkpoint, nil
}

// segment is a segment's place in a log.
type segment struct {
	key        string // relative to the prefix
	start, end int64
}

// segmentKey names the segment of rel's log from start to end, first written on day.
func segmentKey(rel, day string, start, end int64) string {
	return fmt.Sprintf("%s/%s/%s/%0*d-%0*d%s", logsDir, rel, day, offsetDigits, start, offsetDigits, end, segmentSuffix)
}

// parseSegment reads a segment key (relative to the prefix) of the log of rel.
func parseSegment(rel, key string) (segment, bool) {
	rest, ok := strings.CutPrefix(key, logsDir+"/"+rel+"/")
	if !ok {
		return segment{}, false
	}
	day, name, ok := strings.Cut(rest, "/")
	if !ok || !validDay(day) {
		return segment{}, false
	}
	name, ok = strings.CutSuffix(name, segmentSuffix)
	if !ok {
		return segment{}, false
	}
	a, b, ok := strings.Cut(name, "-")
	if !ok || len(a) != offsetDigits || len(b) != offsetDigits {
		return segment{}, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end <= start {
		return segment{}, false
	}
	return segment{key: key, start: start, end: end}, true
}

const dayLayout = "2006-01-02"

func validDay(s string) bool {
	_, err := time.Parse(dayLayout, s)
	return err == nil
}

// segmentDay is the day of a segment's key: the day of its first line, but never before the
// day of the segment before it, so that a log's keys sort by offset.
func segmentDay(first time.Time, prev string) string {
	day := first.UTC().Format(dayLayout)
	if first.IsZero() {
		day = time.Now().UTC().Format(dayLayout)
	}
	if p := keyDay(prev); p > day {
		return p
	}
	return day
}

// keyDay is the day of a segment key, "" for none.
func keyDay(key string) string {
	if key == "" {
		return ""
	}
	dir := path.Base(path.Dir(key))
	if !validDay(dir) {
		return ""
	}
	return dir
}

// Segments lists the segments of a container's log that its checkpoint covers, in order.
func (d *Dest) Segments(namespace, pod, container string) ([]objstore.Object, *store.Checkpoint, error) {
	return d.SegmentsFrom(namespace, pod, container, 0, "")
}

// SegmentsFrom lists the segments of a container's log from byte at (where one must start) up to
// its checkpoint, in order. after, if set, is the key (full) of the segment that ends at at: the
// listing starts after it, so that a reader that goes on from there lists only what is new.
func (d *Dest) SegmentsFrom(namespace, pod, container string, at int64, after string) ([]objstore.Object, *store.Checkpoint, error) {
	rel, err := containerRel(namespace, pod, container)
	if err != nil {
		return nil, nil, err
	}
	c, err := d.readCheckpoint(rel)
	if err != nil || c == nil {
		return nil, nil, err
	}
	var segs []segment
	sizes := map[string]int64{}
	err = d.b.List(d.ctx, d.key(logsDir+"/"+rel+"/"), after, func(o objstore.Object) error {
		key := d.rel(o.Key)
		if s, ok := parseSegment(rel, key); ok && s.start >= at && s.end <= c.Checkpoint.Size {
			segs = append(segs, s)
			sizes[s.key] = o.Size
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing the segments of %s: %w", rel, err)
	}
	// Keys sort by offset; a gap or an overlap means the bucket was changed by something else.
	var out []objstore.Object
	for _, s := range segs {
		switch {
		case s.start < at:
			return nil, nil, fmt.Errorf("%s: two segments hold byte %d (changed outside kubectl logexport?)", d.URL(logsDir+"/"+rel), s.start)
		case s.start > at:
			return nil, nil, fmt.Errorf("%s: no segment holds bytes %d to %d, which its checkpoint covers (changed outside kubectl logexport?)", d.URL(logsDir+"/"+rel), at, s.start)
		}
		out = append(out, objstore.Object{Key: d.key(s.key), Size: sizes[s.key]})
		at = s.end
	}
	if at != c.Checkpoint.Size {
		return nil, nil, fmt.Errorf("%s: the segments end at byte %d, its checkpoint at %d (changed outside kubectl logexport?)", d.URL(logsDir+"/"+rel), at, c.Checkpoint.Size)
	}
	cp := c.Checkpoint
	return out, &cp, nil
}

// LogURL is where a container's log goes in the bucket u names: the folder of its segments.
func LogURL(u objstore.URL, namespace, pod, container string) string {
	rel := logsDir + "/" + namespace + "/" + pod + "/" + container + "/"
	if u.Prefix != "" {
		rel = u.Prefix + "/" + rel
	}
	return u.Scheme + "://" + u.Bucket + "/" + rel
}

// SegmentDay reads a segment key (full, or relative to the prefix): its day and first byte.
func SegmentDay(key string) (day string, start int64, ok bool) {
	s, ok := parseSegmentName(key)
	return keyDay(key), s.start, ok
}

// SegmentEnd reads a segment key: its day and the byte after its last.
func SegmentEnd(key string) (day string, end int64, ok bool) {
	s, ok := parseSegmentName(key)
	return keyDay(key), s.end, ok
}

// parseSegmentName reads the offsets of a segment key's last element.
func parseSegmentName(key string) (segment, bool) {
	name := path.Base(key)
	day := keyDay(key)
	if day == "" {
		return segment{}, false
	}
	return parseSegment("x", logsDir+"/x/"+day+"/"+name)
}
