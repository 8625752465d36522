package franz_test

import (
	"os"
	"testing"

	"github.com/inorder/inorder/internal/kafkatest/churn"
	"github.com/inorder/inorder/internal/kafkatest/churn/frmember"
)

// The churn test re-executes this test binary as its member processes; the
// member's environment switches it to that role before any test runs.
func init() {
	if churn.IsMember() {
		os.Exit(churn.MemberMain(frmember.Consume))
	}
}

// Issue 9 and 12: three member processes share four partitions while
// members are SIGKILLed or stopped with SIGTERM and replaced, then all stop
// cleanly: every record is handled, the group's commits never go down, no
// partition stalls, and the final commits equal the log ends; under both
// balancers.
func TestChurnEveryRecordHandledCommitsNeverGoDownFinalCommitsAtLogEnd(t *testing.T) {
	for _, protocol := range []string{"eager", "cooperative"} {
		t.Run(protocol, func(t *testing.T) {
			churn.Check(t, churn.TestConfig(t, "franz-"+protocol, protocol))
		})
	}
}
