// Command chunkparams measures chunk counts, zero-window cuts and cross-version
// dedup of chunking parameters on directory trees (SPEC.md §3 rationale).
//
//	usage: chunkparams "min,max,bits,z|n;..." TREE...
package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/restic/chunker"
)

type params struct {
	min, max uint
	bits     int
	zero     bool
}

func files(root string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// segments splits data into non-zero segments separated by aligned zero runs >= 32K
func segments(b []byte, zero bool) [][]byte {
	if !zero {
		return [][]byte{b}
	}
	var segs [][]byte
	const bs = 4096
	start := 0
	i := 0
	zb := make([]byte, bs)
	for i+bs <= len(b) {
		j := i
		for j+bs <= len(b) && bytes.Equal(b[j:j+bs], zb) {
			j += bs
		}
		if j-i >= 32768 {
			if i > start {
				segs = append(segs, b[start:i])
			}
			start = j
			i = j
			continue
		}
		if j > i {
			i = j
		} else {
			i += bs
		}
	}
	if start < len(b) {
		segs = append(segs, b[start:])
	}
	return segs
}

func main() {
	pol := chunker.Pol(0x3DA3358B4DC173)
	var ps []params
	for _, s := range strings.Split(os.Args[1], ";") {
		f := strings.Split(s, ",")
		mn, _ := strconv.Atoi(f[0])
		mx, _ := strconv.Atoi(f[1])
		bits, _ := strconv.Atoi(f[2])
		ps = append(ps, params{uint(mn) << 10, uint(mx) << 10, bits, f[3] == "z"})
	}
	trees := os.Args[2:]
	for _, p := range ps {
		seen := map[[32]byte]bool{}
		c := chunker.NewWithBoundaries(nil, pol, p.min, p.max)
		buf := make([]byte, p.max)
		for ti, t := range trees {
			var n, newBytes, total, small, afterZero int64
			for _, fn := range files(t) {
				data, err := os.ReadFile(fn)
				if err != nil {
					continue
				}
				total += int64(len(data))
				for _, seg := range segments(data, p.zero) {
					c.ResetWithBoundaries(bytes.NewReader(seg), pol, p.min, p.max)
					c.SetAverageBits(p.bits)
					off := 0
					for {
						ch, err := c.Next(buf)
						if err == io.EOF {
							break
						}
						n++
						end := off + int(ch.Length)
						if ch.Length < p.max && end < len(seg) && end >= 64 && bytes.Count(seg[end-64:end], []byte{0}) == 64 {
							afterZero++
						}
						if ch.Length <= p.min+1024 && end < len(seg) {
							small++
						}
						off = end
						h := sha256.Sum256(ch.Data)
						if !seen[h] {
							seen[h] = true
							newBytes += int64(ch.Length)
						}
					}
				}
			}
			fmt.Printf("min=%dK max=%dK bits=%d zero=%v tree#%d %s: bytes=%d chunks=%d new=%d (%.1f%%) nearMin=%.1f%% afterZero=%.1f%%\n",
				p.min>>10, p.max>>10, p.bits, p.zero, ti, filepath.Base(t), total, n, newBytes, 100*float64(newBytes)/float64(total), 100*float64(small)/float64(n), 100*float64(afterZero)/float64(n))
		}
	}
}
