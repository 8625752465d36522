package franz

// DeadLetter is the dead-letter producer, for tests of it alone.
type DeadLetter = deadLetter

// NewDeadLetter returns c's producer of the dead-letter topic topic.
func NewDeadLetter(c *Consumer, topic string) (*DeadLetter, error) { return c.newDeadLetter(topic) }
