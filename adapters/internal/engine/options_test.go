package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

type mine struct{ flag bool }
type theirs struct{}

func withMine() engine.Option {
	return func(o *engine.Options) { engine.Own[mine](o, "mine", "WithMine").flag = true }
}

func TestOptionsDefaultsAreValid(t *testing.T) {
	o, err := engine.NewOptions(&mine{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	if !o.ReadCommitted || o.StartOffset != engine.Earliest {
		t.Fatalf("ReadCommitted %v StartOffset %v, want true Earliest", o.ReadCommitted, o.StartOffset)
	}
}

func TestAnOptionOfAnotherAdapterIsRefusedByName(t *testing.T) {
	_, err := engine.NewOptions(&theirs{}, []engine.Option{withMine()})
	if !errors.Is(err, engine.ErrConfig) || !strings.Contains(err.Error(), "WithMine") {
		t.Fatalf("err = %v, want ErrConfig naming WithMine", err)
	}
	o, err := engine.NewOptions(&mine{}, []engine.Option{withMine()})
	if err != nil || !o.Adapter.(*mine).flag {
		t.Fatalf("own option not applied: %v", err)
	}
	if _, err := engine.NewOptions(&mine{}, []engine.Option{nil}); !errors.Is(err, engine.ErrConfig) {
		t.Fatalf("nil option: %v", err)
	}
}

func TestOptionsOutOfRangeAreRefusedByName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []engine.Option
		field string
	}{
		{"zero session timeout", []engine.Option{engine.WithSessionTimeout(0)}, "SessionTimeout"},
		{"zero rebalance timeout", []engine.Option{engine.WithRebalanceTimeout(0)}, "RebalanceTimeout"},
		{"zero heartbeat", []engine.Option{engine.WithHeartbeatInterval(0)}, "HeartbeatInterval"},
		{"heartbeat not below session", []engine.Option{engine.WithHeartbeatInterval(time.Minute)}, "HeartbeatInterval"},
		{"revoke budget does not fit the rebalance timeout", []engine.Option{
			engine.WithRevokeTimeout(43 * time.Second), engine.WithHeartbeatInterval(2 * time.Second)}, "RebalanceTimeout"},
		{"unknown start offset", []engine.Option{engine.WithStartOffset(7)}, "StartOffset"},
		{"zero fetch size", []engine.Option{engine.WithFetchMaxBytes(0)}, "FetchMaxBytes"},
		{"fetch wait below 1ms", []engine.Option{engine.WithFetchMaxWait(time.Microsecond)}, "FetchMaxWait"},
		{"zero request timeout", []engine.Option{engine.WithRequestTimeout(0)}, "RequestTimeout"},
		{"zero retry backoff", []engine.Option{engine.WithRetryBackoff(0)}, "RetryBackoff"},
		{"empty client id", []engine.Option{engine.WithClientID("")}, "ClientID"},
		{"zero concurrency", []engine.Option{engine.WithConcurrency(0)}, "Concurrency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := engine.NewOptions(&mine{}, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			err = o.Validate()
			if !errors.Is(err, engine.ErrConfig) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate = %v, want ErrConfig naming %s", err, tc.field)
			}
		})
	}
}

// Under the consumer group protocol the heartbeat interval is the
// coordinator's: the revoke budget is checked against the rebalance timeout
// alone, and still refused when it does not fit.
func TestConsumerProtocolChecksTheRevokeBudgetWithoutTheHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		name     string
		consumer bool
		revoke   time.Duration
		ok       bool
	}{
		{"classic: heartbeat + revoke = rebalance", false, 42 * time.Second, false},
		{"classic: heartbeat + revoke below rebalance", false, 41 * time.Second, true},
		{"consumer: heartbeat + revoke above rebalance, revoke below", true, 44 * time.Second, true},
		{"consumer: revoke = rebalance", true, 45 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := engine.NewOptions(&mine{}, []engine.Option{engine.WithRevokeTimeout(tc.revoke)})
			if err != nil {
				t.Fatal(err)
			}
			o.ConsumerProtocol = tc.consumer
			err = o.Validate()
			if tc.ok && err != nil {
				t.Fatalf("Validate = %v, want nil", err)
			}
			if !tc.ok && (!errors.Is(err, engine.ErrConfig) || !strings.Contains(err.Error(), "RevokeTimeout") ||
				!strings.Contains(err.Error(), "RebalanceTimeout") || strings.Contains(err.Error(), "HeartbeatInterval") == tc.consumer) {
				t.Fatalf("Validate = %v, want ErrConfig naming RevokeTimeout and RebalanceTimeout (HeartbeatInterval: %v)", err, !tc.consumer)
			}
		})
	}
}

func TestValidateTargetNamesTheArgument(t *testing.T) {
	for _, tc := range []struct {
		brokers, topics []string
		group, field    string
		optional        bool
	}{
		{nil, []string{"t"}, "g", "Brokers", false},
		{[]string{""}, []string{"t"}, "g", "Brokers[0]", true},
		{[]string{"b"}, []string{"t"}, "", "Group", false},
		{[]string{"b"}, nil, "g", "Topics", false},
		{[]string{"b"}, []string{"t", ""}, "g", "Topics[1]", false},
	} {
		err := engine.ValidateTarget(tc.brokers, tc.group, tc.topics, tc.optional)
		if !errors.Is(err, engine.ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("ValidateTarget(%v, %q, %v) = %v, want naming %s", tc.brokers, tc.group, tc.topics, err, tc.field)
		}
	}
	if err := engine.ValidateTarget(nil, "g", []string{"t"}, true); err != nil {
		t.Errorf("optional brokers refused: %v", err)
	}
}

func TestLifecycleOneRunAtATimeAndCloseIsFinal(t *testing.T) {
	var l engine.Lifecycle
	ctx, end, err := l.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Begin(context.Background()); !errors.Is(err, engine.ErrRunning) {
		t.Fatalf("second Begin = %v, want ErrRunning", err)
	}
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	<-ctx.Done() // Close cancels the running Run's context ...
	select {
	case <-closed:
		t.Fatal("Close returned before the Run ended")
	default:
	}
	end() // ... and waits for it to end
	<-closed
	if _, _, err := l.Begin(context.Background()); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Begin after Close = %v, want ErrClosed", err)
	}
	l.Close() // again: returns at once
}

func TestWithRetryDefaultsZeroWaitsAndRefusesZeroAttempts(t *testing.T) {
	o, err := engine.NewOptions(&mine{}, []engine.Option{engine.WithRetry(engine.Retry{MaxAttempts: 3, Backoff: 20 * time.Second})})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil || o.Retry.MaxBackoff != 20*time.Second {
		t.Fatalf("Validate = %v, MaxBackoff %v; want nil, 20s (Backoff, above the 10s default)", err, o.Retry.MaxBackoff)
	}
	for _, tc := range []struct {
		r     engine.Retry
		field string
	}{
		{engine.Retry{MaxAttempts: 0}, "MaxAttempts"},
		{engine.Retry{MaxAttempts: 2, Backoff: -time.Second}, "Backoff"},
		{engine.Retry{MaxAttempts: 2, Backoff: time.Second, MaxBackoff: time.Millisecond}, "MaxBackoff"},
	} {
		o, err := engine.NewOptions(&mine{}, []engine.Option{engine.WithRetry(tc.r)})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Validate(); !errors.Is(err, engine.ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("WithRetry(%+v): Validate = %v, want ErrConfig naming %s", tc.r, err, tc.field)
		}
	}
}

func TestBackoffDoublesUpToItsCapAndRetryBackoffAtAgrees(t *testing.T) {
	b := engine.NewRetryBackoff(time.Second)
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if d := b.Next(); d != w {
			t.Fatalf("wait %d = %v, want %v", i+1, d, w)
		}
		if d := engine.RetryBackoffAt(time.Second, i+1); d != w {
			t.Fatalf("RetryBackoffAt(1s, %d) = %v, want %v", i+1, d, w)
		}
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Fatalf("after Reset: %v, want 1s", d)
	}
	if d := engine.NewBackoff(7*time.Second, time.Second).Next(); d != 7*time.Second {
		t.Fatalf("a first wait above the cap: %v, want 7s", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if engine.NewBackoff(time.Hour, time.Hour).Wait(ctx) {
		t.Fatal("Wait with an ended context reported a full wait")
	}
}
