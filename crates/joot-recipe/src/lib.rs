//! joot-recipe
