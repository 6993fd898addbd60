//! A writer's key: made on first start and registered in the data directory's trusted keys,
//! refused when a named key file does not list it, and rotated with the old key kept as retired.

use contingent_log::{KeyStatus, WriterKeys};
use contingent_registry::{rotate_writer_key, writer_key, Settings};

#[test]
fn the_embedded_default_registers_its_own_key_on_first_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings::new(dir.path());
    let key = writer_key(&settings).expect("key");
    let again = writer_key(&settings).expect("key");
    assert_eq!(key.id(), again.id());
    let keys = WriterKeys::load(&settings.writer_keys_path()).expect("keys");
    assert_eq!(keys.writers.len(), 1);
    assert_eq!(keys.writers[0].key_id, key.id());
    assert_eq!(keys.writers[0].status, KeyStatus::Active);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(settings.writer_key_path())
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_named_key_file_that_does_not_list_the_writer_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let named = dir.path().join("region-writers.json");
    WriterKeys::default().save(&named).expect("save");
    let mut settings = Settings::new(dir.path());
    settings.writer_keys = Some(named.clone());
    let refused = writer_key(&settings).expect_err("not registered");
    assert!(
        refused.to_string().contains("is not registered as active"),
        "{refused}"
    );
    // Nothing was added to the named file: it is the region's configuration.
    assert!(WriterKeys::load(&named).expect("keys").writers.is_empty());
}

#[test]
fn a_rotated_key_is_retired_and_a_new_one_is_active() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings::new(dir.path());
    let old = writer_key(&settings).expect("key").id().to_owned();
    let new = rotate_writer_key(&settings).expect("rotated");
    assert_ne!(old, new);
    assert_eq!(writer_key(&settings).expect("key").id(), new);
    let keys = WriterKeys::load(&settings.writer_keys_path()).expect("keys");
    assert_eq!(keys.get(&old).map(|k| k.status), Some(KeyStatus::Retired));
    assert_eq!(keys.get(&new).map(|k| k.status), Some(KeyStatus::Active));
}
