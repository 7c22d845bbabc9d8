-- Type 2 history of the customer's attributes: one row per customer and version, from
-- the customers change log. A version starts when the shop stamped the change
-- (updated_at; the batch's landing time if it did not) and ends when the next one starts.
-- Changes that leave these attributes as they were add no version. A customer deleted at
-- the source ends with a version of its last attributes marked is_deleted, from the
-- deletion's commit time: the history stays, "as of" answers stay right.
-- Incremental: a build rebuilds the history of the customers with changes committed since
-- the last one (the versions of one customer depend only on its own changes).
{{ config(
    materialized='incremental',
    unique_key='customer_id',
    incremental_strategy='replace_keys',
    **delta_hooks(),
) }}
{%- set since = lake_since([]) %}
{%- set changes_seen = lake_watermark('_snapshot_id') if since is not none else none %}
{%- set now = lake_snapshot() %}

with

{%- if since is not none %}

changed as (

    -- the customers with changes committed since: their history is rebuilt whole
    select distinct cast(customer_id as bigint) as customer_id
    from {{ source('shop', 'customers') }}
    where snapshot_id > {{ changes_seen }}

),

{%- endif %}

versions as (

    select * from {{ ref('base_shop__customers') }}
    {%- if since is not none %}
    where customer_id in (select customer_id from changed)
    {%- endif %}

),

hashed as (

    select
        *,
        md5(concat_ws('|', email, first_name, last_name, country_code, _is_deleted))
            as attributes_hash
    from versions

),

changes as (

    select * from hashed
    qualify attributes_hash is distinct from lag(attributes_hash) over (
        partition by customer_id order by _lsn, _seq
    )

),

starts as (

    select
        *,
        row_number() over (partition by customer_id order by _lsn, _seq) as version,
        lag(updated_at) over (partition by customer_id order by _lsn, _seq)
            as previous_updated_at
    from changes

),

started as (

    select
        *,
        case
            when _is_deleted then timezone('UTC', _commit_ts)
            when version = 1 then least(created_at, updated_at)
            when updated_at > previous_updated_at then updated_at
            else timezone('UTC', _ingested_at)
        end as started_at
    from starts

),

final as (

    select
        -- ids
        md5(customer_id || '-' || version) as customer_version_id,
        customer_id,
        version,

        -- attributes
        email,
        first_name,
        last_name,
        country_code,

        -- validity
        started_at as valid_from,
        lead(started_at) over (partition by customer_id order by version) as valid_to,
        lead(version) over (partition by customer_id order by version) is null as is_current,
        _is_deleted as is_deleted,

        -- lineage
        _load_id,
        _snapshot_id

    from started

)

{{ replace_keys_rows('customer_id', since, now) }}
