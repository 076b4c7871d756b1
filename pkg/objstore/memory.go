package objstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Memory is a Bucket held in memory, for tests. Fail, if set, is asked before each operation
// and can fail it (an outage, a crash): op is "put", "get", "list" or "delete".
type Memory struct {
	mu      sync.Mutex
	objects map[string][]byte
	etags   map[string]string
	version int
	Fail    func(op, key string) error
	// Puts counts the puts that succeeded.
	Puts int
}

// NewMemory returns an empty bucket.
func NewMemory() *Memory { return &Memory{objects: map[string][]byte{}, etags: map[string]string{}} }

func (m *Memory) fail(op, key string) error {
	if m.Fail == nil {
		return nil
	}
	return m.Fail(op, key)
}

func (m *Memory) Put(ctx context.Context, key string, body []byte, opts PutOptions) error {
	_, err := m.PutETag(ctx, key, body, opts)
	return err
}

func (m *Memory) PutETag(ctx context.Context, key string, body []byte, opts PutOptions) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("put", key); err != nil {
		return "", err
	}
	_, ok := m.objects[key]
	if ok && opts.IfAbsent {
		return "", fmt.Errorf("putting %s: %w", key, ErrExists)
	}
	if opts.IfMatch != "" && m.etags[key] != opts.IfMatch {
		return "", fmt.Errorf("putting %s: %w", key, ErrChanged)
	}
	m.objects[key] = append([]byte(nil), body...)
	m.version++
	m.etags[key] = fmt.Sprintf("\"%d\"", m.version)
	m.Puts++
	return m.etags[key], nil
}

func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	b, _, err := m.GetETag(ctx, key)
	return b, err
}

func (m *Memory) GetETag(ctx context.Context, key string) ([]byte, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("get", key); err != nil {
		return nil, "", err
	}
	b, ok := m.objects[key]
	if !ok {
		return nil, "", fmt.Errorf("getting %s: %w", key, ErrNotFound)
	}
	return append([]byte(nil), b...), m.etags[key], nil
}

func (m *Memory) List(ctx context.Context, prefix, startAfter string, fn func(Object) error) error {
	m.mu.Lock()
	if err := m.fail("list", prefix); err != nil {
		m.mu.Unlock()
		return err
	}
	var objs []Object
	for k, v := range m.objects {
		if strings.HasPrefix(k, prefix) && k > startAfter {
			objs = append(objs, Object{Key: k, Size: int64(len(v))})
		}
	}
	m.mu.Unlock()
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func (m *Memory) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("delete", key); err != nil {
		return err
	}
	delete(m.objects, key)
	delete(m.etags, key)
	return nil
}

func (m *Memory) String() string { return "memory://bucket" }

// Keys returns every key, sorted.
func (m *Memory) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.objects))
	for k := range m.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
