// Package basesource lets BuildKit build on OCIv2 images: FROM, COPY --from
// and RUN --mount=from= an image the daemon's oci2 store holds. It wraps
// the stock docker-image source (ordinary images take the stock path
// unchanged) and answers image-config requests from the store, so stock
// frontends and clients need no change.
package basesource
