pub mod registry;
pub mod tree;
