package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// writeLayered writes a base tree and a derived one that inserts a new file
// after every base file (as installing packages does), so the derived
// image's frames are nearly all new while most of its bytes are stored.
// It returns the bytes of the new files: half of them random, so they
// compress to a bit over half their size.
func writeLayered(t *testing.T, base, derived string) (newBytes int64) {
	wb := newTreeWriter(t, base, 11)
	wd := newTreeWriter(t, derived, 12)
	for i := 0; i < 300; i++ {
		name := fmt.Sprintf("usr/share/d%02d/f%04d", i%7, i)
		b := wb.random(1<<10 + i*37%(24<<10))
		wb.file(name+"a", b, 0o644)
		wd.file(name+"a", b, 0o644)
		n := wd.random(1<<10 + i*53%(16<<10))
		wd.file(name+"b", n, 0o644)
		newBytes += int64(len(n))
	}
	fixTimes(t, base)
	fixTimes(t, derived)
	return newBytes
}

// TestDerivedAfterBaseRemoved: a derived image stored after its base writes
// about its new files only; removing the base and collecting keeps it
// intact (check --read-data, unpack identical).
func TestDerivedAfterBaseRemoved(t *testing.T) {
	dir := t.TempDir()
	base, derived := filepath.Join(dir, "base"), filepath.Join(dir, "derived")
	newBytes := writeLayered(t, base, derived)
	c := cli{t, filepath.Join(dir, "store")}
	var b, d createOut
	c.mustJSON(&b, "create", "--tag", "base", base)
	c.mustJSON(&d, "create", "--tag", "derived", derived)
	// Storing every changed frame again would write the base's bytes too.
	if d.Stats.StoredNew > newBytes*6/10 {
		t.Errorf("derived image wrote %d bytes for %d bytes of new files (half random); its base %d",
			d.Stats.StoredNew, newBytes, b.Stats.StoredNew)
	}
	units, _ := os.ReadDir(filepath.Join(c.store, "oci2", "units"))
	if len(units) == 0 {
		t.Error("no unit descriptors")
	}
	c.must("check", "--read-data")
	c.must("rm", "base")
	c.must("gc")
	c.must("check", "--read-data")
	dest := filepath.Join(dir, "out")
	c.must("unpack", "derived", dest)
	sameTree(t, snapshot(t, derived), snapshot(t, dest))
}
