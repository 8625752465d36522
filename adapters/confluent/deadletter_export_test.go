package confluent

import "github.com/confluentinc/confluent-kafka-go/v2/kafka"

// DeadLetter is the dead-letter producer, for tests until the engine's
// DeadLetter hook calls it.
type DeadLetter = deadLetter

// NewDeadLetter returns c's producer of the dead-letter topic topic.
func NewDeadLetter(c *Consumer, topic string) (*DeadLetter, error) { return c.newDeadLetter(topic) }

// InjectFatal makes the current producer hit a fatal error (librdkafka's
// test hook), as an idempotent producer does on a broken sequence.
func (d *DeadLetter) InjectFatal() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cur.p.TestFatalError(kafka.ErrOutOfOrderSequenceNumber, "injected by the test")
}
