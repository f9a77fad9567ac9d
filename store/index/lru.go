package index

import (
	"container/list"
	"sync"
)

// blobCache is a small LRU of decoded (raw) blobs bounded by total bytes.
type blobCache struct {
	mu    sync.Mutex
	max   int
	used  int
	order *list.List // front = most recently used; values are *cached
	byKey map[int32]*list.Element
}

type cached struct {
	blob int32
	raw  []byte
}

func newBlobCache(max int) *blobCache {
	return &blobCache{max: max, order: list.New(), byKey: make(map[int32]*list.Element)}
}

func (c *blobCache) get(blob int32) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[blob]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cached).raw, true
}

func (c *blobCache) put(blob int32, raw []byte) {
	if len(raw) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[blob]; ok {
		return
	}
	c.byKey[blob] = c.order.PushFront(&cached{blob: blob, raw: raw})
	c.used += len(raw)
	for c.used > c.max {
		e := c.order.Back()
		v := e.Value.(*cached)
		c.order.Remove(e)
		delete(c.byKey, v.blob)
		c.used -= len(v.raw)
	}
}
