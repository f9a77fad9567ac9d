package index

// SetRunEntries sets the entries a scan holds before it saves a run (see
// runEntries) until the returned function restores it.
func SetRunEntries(n int) (restore func()) {
	old := runEntries
	runEntries = n
	return func() { runEntries = old }
}

// HeldMax is the most entries a scan of x held in memory (see makeRoom).
func HeldMax(x *Index) int { return int(x.heldMax.Load()) }
