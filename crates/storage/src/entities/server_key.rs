//! `server_keys`: the server's own secrets (such as the token-signing seed), encrypted.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "server_keys")]
pub struct Model {
    /// What the key is for, e.g. `token-signing`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `nonce || ciphertext` (see `crypto`).
    #[sea_orm(column_type = "Blob")]
    pub key_enc: Vec<u8>,
    pub created: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
