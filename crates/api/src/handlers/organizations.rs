//! The directory, queues, class registers and vacancies.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use contingent_access::Read;
use contingent_projections::queries::{self, VacancyFilter};

use super::{consistent, found, uuid, AppState};
use crate::answers::{Organizations, Vacancies};
use crate::auth::Auth;
use crate::error::ApiError;
use crate::params::{OrganizationsQuery, Params, QueueQuery, RegisterQuery, VacanciesQuery};

pub(crate) async fn organizations(
    State(registry): AppState,
    auth: Auth,
    Params(q): Params<OrganizationsQuery>,
) -> Result<Response, ApiError> {
    auth.allow(&registry, Read::Organizations).await?;
    consistent(&registry, q.min_position).await?;
    let rows = queries::organizations(registry.read().pool(), q.municipality.as_deref()).await?;
    Ok(Json(Organizations {
        organizations: rows,
    })
    .into_response())
}

pub(crate) async fn queue(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
    Params(q): Params<QueueQuery>,
) -> Result<Response, ApiError> {
    let id = uuid(&id)?;
    auth.allow(&registry, Read::Queue(id.into())).await?;
    let as_of = q.as_of.map_or_else(|| Utc::now().date_naive(), |d| d.0);
    consistent(&registry, q.min_position).await?;
    let view = queries::queue(registry.read().pool(), id.into(), as_of).await?;
    found(&registry, view, "organization_not_found")
}

pub(crate) async fn class_register(
    State(registry): AppState,
    auth: Auth,
    Path(id): Path<String>,
    Params(q): Params<RegisterQuery>,
) -> Result<Response, ApiError> {
    let id = uuid(&id)?;
    auth.allow(&registry, Read::ClassRegister(id.into()))
        .await?;
    consistent(&registry, q.min_position).await?;
    let day = |d: Option<crate::params::Date>| d.map(|d| d.0);
    let view = queries::class_register(
        registry.read(),
        id.into(),
        day(q.on),
        day(q.from),
        day(q.to),
    )
    .await?;
    if let Some(v) = &view {
        auth.journal_reads(&registry, v.roster.iter().map(|r| r.learner_id))
            .await?;
    }
    found(&registry, view, "class_not_found")
}

pub(crate) async fn vacancies(
    State(registry): AppState,
    auth: Auth,
    Params(q): Params<VacanciesQuery>,
) -> Result<Response, ApiError> {
    let filter = VacancyFilter {
        organization_id: q.organization_id.map(|o| o.0.into()),
        municipality: q.municipality,
        academic_year: q.academic_year.map(|y| y.0),
        level: q.level.map(|l| l.0),
        only_free: q.only_free.is_some_and(|f| f.0),
    };
    auth.allow(
        &registry,
        Read::Vacancies {
            organization: q.organization_id.map(|o| o.0.into()),
            municipality: filter.municipality.clone(),
        },
    )
    .await?;
    consistent(&registry, q.min_position).await?;
    let rows = queries::vacancies(registry.read(), &filter).await?;
    let (capacity, enrolled) = rows
        .iter()
        .fold((0, 0), |(c, e), r| (c + r.capacity, e + r.enrolled));
    Ok(Json(Vacancies {
        capacity,
        enrolled,
        free: capacity - enrolled,
        classes: rows,
    })
    .into_response())
}
