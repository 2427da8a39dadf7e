// Package event turns the raw JSON the Lambda runtime hands the function into
// one typed event: a CloudWatch alarm state change (delivered by EventBridge,
// by SNS, or by the alarm's own Lambda action), an EventBridge scheduled
// event, or a manual invocation.
//
// It only parses and validates. It must never call AWS, never guess at a
// shape it does not know (an unknown or malformed event is an *Error and
// nothing downstream runs), and never trust a field for more than its shape:
// addresses, ids and durations from a manual invoke are validated here, and
// the region of an SNS notification comes from the alarm ARN, never from its
// display-name Region field.
package event
