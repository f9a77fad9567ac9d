// Package snapshotter is a containerd snapshotter that runs OCIv2 images
// from an oci2 store without unpacking them. It is containerd's overlayfs
// snapshotter (its metadata, its upper and work directories) with one
// addition: the committed snapshot of an OCIv2 image (a Prepare labelled
// LabelImage and containerd.io/snapshot.ref, as `oci2 containerd import`
// sends) gets the image's read-only FUSE mount on its directory, so every
// container of the image is an overlay whose lowerdir is that one mount.
// An image snapshot labelled LabelSource is mounted lazily from that
// registry repository: file data is fetched as containers read it.
//
// Ordinary images keep working through it as through the overlayfs
// snapshotter: they are the same code, and a node need not choose per
// image which snapshotter pulls it.
//
// The FUSE mounts are served by processes of their own (a Mounter), not by
// the snapshotter's: restarting the snapshotter leaves running containers
// alone, and New adopts the mounts it finds (remounting any that died).
package snapshotter
