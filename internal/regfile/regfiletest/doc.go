// Package regfiletest lets a test prove that a file was never opened:
// inotify reports every open of a watched inode except O_PATH's (which runs
// no driver and reads nothing).
package regfiletest
