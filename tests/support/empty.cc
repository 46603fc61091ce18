// Keeps the test support library non-empty while it has no helpers of its own.
namespace citycard::testing {
int support_library_anchor = 0;
}
