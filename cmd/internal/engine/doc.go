// Package engine is banshee's one path from a request to a result, shared by
// every door: the CLI (block, plan, unblock, list, status, reconcile,
// sweep), watch and the Lambda function.
//
//	request -> gather the world (protected networks, security groups, NACLs,
//	           existing blocks) -> policy.Decide (pure) -> enforce through
//	           the consumer-side interfaces below (local host firewall,
//	           remote hosts, subnet edge) -> fall back as the policy said ->
//	           record -> one Result, printed the same way by every door
//
// plan is Block with enforcement off, so the two can never disagree. The
// engine also compares desired state (the host journal, the NACL tags) with
// what is (kernel sets and jumps, NACL entries): List marks drift and
// Reconcile repairs it.
//
// The engine never parses flags or prints outside the Result's own writers;
// it never touches a firewall or ACL through anything but the interfaces it
// is given, so tests give it fakes or real backends in a namespace.
package engine
