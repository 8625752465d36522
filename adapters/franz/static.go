package franz

// This file holds static membership (WithInstanceID): kgo's InstanceID, and
// what kgo leaves to the application when another member takes the id.
//
// kgo's Close does not leave the group when an instance id is set, and it
// still revokes every partition first (onRevoked: drain and commit), so
// Run's end needs nothing more. When the broker fences the member
// (FENCED_INSTANCE_ID, to a heartbeat, a join or a commit), kgo calls
// onLost (the partitions are dropped, nothing committed), reports the error
// to HookGroupManageError, backs off and joins again with the same id,
// which would fence the other member in turn, and so on. The hook ends
// kgo's client context before that backoff ends (kgo's group loop returns
// when it sees it) and stops Run with ErrFenced.

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// staticOpts are the kgo options of a static member (none for a dynamic
// one), and those of the group protocol (WithGroupProtocol).
func (r *runner) staticOpts() []kgo.Opt {
	var opts []kgo.Opt
	if r.cfg.protocol == ConsumerProtocol {
		// kgo speaks KIP-848 when its first balancer is range or sticky;
		// the coordinator's assignor of that name assigns.
		opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
	}
	if r.cfg.instanceID == "" {
		return opts
	}
	return append(opts, kgo.InstanceID(r.cfg.instanceID), kgo.WithContext(r.clientCtx))
}

// fenceHook stops Run when the broker fenced this static member.
type fenceHook struct{ r *runner }

var _ kgo.HookGroupManageError = fenceHook{}

func (h fenceHook) OnGroupManageError(err error) {
	if errors.Is(err, kerr.FencedInstanceID) {
		h.r.fenced(err)
	}
}

// fenced stops Run with ErrFenced and ends kgo's client context so that
// its group loop does not join again. Safe to call more than once, from
// any goroutine.
func (r *runner) fenced(err error) {
	r.fail(fmt.Errorf("%w: another member joined group %q with instance id %q: %w",
		ErrFenced, r.c.group, r.cfg.instanceID, err))
	r.stopClient()
}
