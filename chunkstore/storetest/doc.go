// Package storetest is the conformance suite every chunkstore.Store backend
// runs: storetest.Run(t, newStore).
package storetest
