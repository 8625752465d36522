package watermark

import "fmt"

const (
	// DefaultWindow is the window when WithWindow is not given: 81,880
	// offsets, which fills a ring of 2,048 words (16 KiB, 1.6 bits per
	// offset) exactly.
	DefaultWindow = (2048 - 1) * dataBits

	// MaxWindow is the largest window WithWindow accepts (about 200 MiB of
	// ring per partition).
	MaxWindow = 1 << 30
)

type config struct {
	window int
}

func defaultConfig() config { return config{window: DefaultWindow} }

// Option configures a Partition, or every Partition a Tracker creates.
type Option func(*config)

// WithWindow sets the window: the largest span, in offsets, from the commit
// point to the high mark. Tracking an offset at or beyond commit point+window
// returns ErrWindowFull until the head of the partition is acked: that is the
// back-pressure that bounds memory and redelivery after a crash. The default is
// DefaultWindow. The ring takes 8 bytes per 40 offsets, rounded up to a power
// of two words; windows of (2^k-1)*40 offsets use it fully.
//
// n must be between 1 and MaxWindow; NewPartition and NewTracker panic
// otherwise (a programmer error: validate user input with CheckWindow).
func WithWindow(n int) Option {
	return func(c *config) { c.window = n }
}

// CheckWindow returns an error naming the problem if n is not a valid window.
func CheckWindow(n int) error {
	if n < 1 || n > MaxWindow {
		return fmt.Errorf("watermark: window %d out of range [1, %d]", n, MaxWindow)
	}
	return nil
}

func buildConfig(opts []Option) config {
	c := defaultConfig()
	for _, o := range opts {
		o(&c)
	}
	if err := CheckWindow(c.window); err != nil {
		panic(err.Error())
	}
	return c
}
