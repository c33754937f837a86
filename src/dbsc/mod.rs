// Allowed until the layer's registration and refresh endpoints call them.
#[allow(dead_code)]
pub(crate) mod fields;
#[allow(dead_code)]
pub(crate) mod proof;
