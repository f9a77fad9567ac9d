package storeindex

import (
	"container/list"
	"sync"
)

// frameCache is a small LRU of decoded (raw) frames bounded by total bytes.
type frameCache struct {
	mu    sync.Mutex
	max   int
	used  int
	order *list.List // front = most recently used; values are *cached
	byKey map[int32]*list.Element
}

type cached struct {
	frame int32
	raw   []byte
}

func newFrameCache(max int) *frameCache {
	return &frameCache{max: max, order: list.New(), byKey: make(map[int32]*list.Element)}
}

func (c *frameCache) get(frame int32) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[frame]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cached).raw, true
}

func (c *frameCache) put(frame int32, raw []byte) {
	if len(raw) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[frame]; ok {
		return
	}
	c.byKey[frame] = c.order.PushFront(&cached{frame: frame, raw: raw})
	c.used += len(raw)
	for c.used > c.max {
		e := c.order.Back()
		v := e.Value.(*cached)
		c.order.Remove(e)
		delete(c.byKey, v.frame)
		c.used -= len(v.raw)
	}
}
