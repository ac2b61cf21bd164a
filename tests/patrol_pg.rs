//! The patrol of `patrol_e2e`'s first test, filed in PostgreSQL: the same events, found
//! the same way (its own binary: run beside the other patrols, it would load the machine
//! they time their faults on).

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_the_same_patrol_files_the_same_issues() {
    let Some(db) = common::pg::database("patrol_pg") else {
        return;
    };
    let f = common::patrol::fly_square_with(common::patrol::SquareRun {
        half_m: 180.0,
        issues: 40,
        seed: 3,
        vehicles: 3,
        speed: 40.0,
        battery_min: 5.0,
        db: Some(db),
        ..Default::default()
    })
    .await;
    assert_eq!(f.store.engine(), gridpatrol::store::Engine::Postgres);
    common::patrol::files_the_seeded_issues_once_each(f);
}
