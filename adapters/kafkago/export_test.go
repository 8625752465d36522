package kafkago

import "github.com/inorder/inorder/adapters/internal/engine"

// Offset is one partition's commit as the commit hook sees it.
type Offset = engine.Offset

// WithGenerationHook calls f at the start of every generation with what this
// member owns in it. Tests only.
func WithGenerationHook(f func(member string, generation int32, owned []TopicPartition)) Option {
	return func(c *config) { c.onGeneration = f }
}

// WithCommitHook calls f after every commit request with its offsets and
// per-partition results (errs nil if the request failed). Tests only.
func WithCommitHook(f func(member string, generation int32, offs []Offset, errs []error)) Option {
	return func(c *config) { c.onCommit = f }
}
