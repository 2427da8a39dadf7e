// Fixture for TestDeriveActionsFixture: never compiled.
package policy

func Decide() {}
