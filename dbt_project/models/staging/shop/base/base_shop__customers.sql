-- Every version of every customer the lake holds (one per full dump that carried it: the
-- table's write disposition is append, to keep them), cleaned: stg_shop__customers keeps
-- the customers of the latest dump, dim_customers_history the changes.
with

source as (

    select *, snapshot_id as _snapshot_id from {{ source('shop', 'customers') }}

),

renamed as (

    select
        -- ids
        cast(customer_id as bigint) as customer_id,

        -- attributes
        lower(nullif(trim(email), '')) as email,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        upper(nullif(trim(country), '')) as country_code,

        -- timestamps
        timezone('UTC', cast(created_at as timestamp)) as created_at,
        timezone('UTC', cast(coalesce(updated_at, created_at) as timestamp)) as updated_at,

        -- lineage
        _load_id,
        _ingested_at,
        _snapshot_id

    from source

)

select * from renamed
