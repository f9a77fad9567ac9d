// Package regfile opens regular files for reading and nothing else: a path
// that names a device node, a fifo, a socket or a directory is refused
// before it is ever opened for reading, so a hostile image or layout cannot
// make oci2 open a host device (a watchdog, a tty that would become the
// controlling terminal) by planting a node where a file is expected.
package regfile
