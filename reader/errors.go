package reader

import "errors"

// SkipDir, returned by a WalkFunc for a directory, skips its subtree.
var SkipDir = errors.New("skip this directory")
