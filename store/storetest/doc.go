// Package storetest is the conformance suite every store.Store backend
// runs: storetest.Run(t, newStore).
package storetest
