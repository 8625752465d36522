//go:build race

package metadata_test

// raceEnabled: under the race detector sync.Pool drops entries at random on
// purpose, so allocation counts there say nothing about the code.
const raceEnabled = true
