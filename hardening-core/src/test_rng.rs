//! The seeded generator of this crate's randomized tests (fastrand's), with the picks they
//! share; each test module adds its own in an `impl Rng` of its own.

/// fastrand's generator, seeded by the test so that a failure names a case that reproduces.
pub(crate) struct Rng(pub(crate) fastrand::Rng);

impl Rng {
    /// A number below `n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0.usize(..n)
    }

    /// True one time in `one_in`.
    pub(crate) fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// One of `items`.
    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}
