-- One row per review, with fraud flags explained by rule and a score.
-- Rules: a burst (3+ reviews in an hour from one account or one IP), a review of a product
-- the reviewer never bought, an extreme rating (1 or 5) from an account younger than 7
-- days, and text that appears in another review.
-- Incremental: a build recomputes the reviews whose inputs changed since the last one (a
-- new review or a new version of one; its reviewer's account created at another time or
-- deleted; a purchase that now counts or no longer does), and every review that shares an
-- account, an IP or a text with a new one (their counts moved). Each count is taken over
-- every review of its account, IP or text, so it is the one a full build gives.
{{ config(
    materialized='incremental',
    unique_key='review_id',
    incremental_strategy='replace_keys',
    **delta_hooks(),
) }}
{%- set since = lake_since([]) %}
{%- set reviews_seen = lake_watermark('_snapshot_id') if since is not none else none %}
{%- set now = lake_snapshot() %}

with

reviews as materialized (

    -- the vendor's API (batch) and the shop's own site (live, through `lakehouse collect`)
    select * from {{ ref('stg_vendor__reviews') }}
    union all by name
    select * from {{ ref('stg_live__reviews') }}

),

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

purchased as (

    select * from {{ ref('int_customer_products_purchased') }}

),
{%- if since is not none %}

touched as (

    -- a new review, or a new version of one
    select review_id, customer_id, author_ip, lower(review_text) as text_key from reviews
    where _snapshot_id > {{ reviews_seen }}

),

changed as (

    select review_id from touched
    union
    -- its reviewer's account was created at another time, or deleted
    select held.review_id from {{ this }} as held
    left join customers on held.customer_id = customers.customer_id
    where held.customer_created_at is distinct from customers.created_at
    union
    -- a purchase that counts now
    select held.review_id from {{ this }} as held
    semi join (select customer_id, product_id from purchased
               where _lake_snapshot > {{ since }}) as bought using (customer_id, product_id)
    where held.is_never_bought
    union
    -- a purchase that no longer counts (its orders cancelled)
    select review_id from (
        select review_id, customer_id, product_id from {{ this }} where not is_never_bought
    ) as held
    anti join (
        select customer_id, product_id from purchased
        semi join (select customer_id, product_id from {{ this }} where not is_never_bought)
            as reviewed using (customer_id, product_id)
    ) as still using (customer_id, product_id)

),

affected as (

    -- the changed reviews, and every review whose counts a new one moved
    select * from reviews semi join changed using (review_id)
    union
    select * from reviews
    semi join touched on reviews.customer_id is not distinct from touched.customer_id
    union
    select * from reviews
    semi join touched on reviews.author_ip is not distinct from touched.author_ip
    union
    select * from reviews
    semi join touched on lower(reviews.review_text) is not distinct from touched.text_key

),

affected_purchases as (

    select customer_id, product_id from purchased
    semi join (select distinct customer_id, product_id from affected) as a
        using (customer_id, product_id)

),
{%- endif %}

by_account as (

    select
        review_id,
        count(*) over (
            partition by customer_id order by reviewed_at
            range between interval 1 hour preceding and current row
        ) as reviews_by_account_last_hour
    from reviews
    {%- if since is not none %}
    semi join (select distinct customer_id from affected) as a
        on reviews.customer_id is not distinct from a.customer_id
    {%- endif %}

),

by_ip as (

    select
        review_id,
        count(*) over (
            partition by author_ip order by reviewed_at
            range between interval 1 hour preceding and current row
        ) as reviews_by_ip_last_hour
    from reviews
    {%- if since is not none %}
    semi join (select distinct author_ip from affected) as a
        on reviews.author_ip is not distinct from a.author_ip
    {%- endif %}

),

by_text as (

    select lower(review_text) as text_key, count(*) as reviews_with_same_text
    from reviews
    {%- if since is not none %}
    semi join (select distinct lower(review_text) as text_key from affected) as a
        on lower(reviews.review_text) is not distinct from a.text_key
    {%- endif %}
    group by 1

),

signals as (

    select
        reviews.*,
        customers.created_at as customer_created_at,
        by_account.reviews_by_account_last_hour,
        by_ip.reviews_by_ip_last_hour,
        by_text.reviews_with_same_text,
        purchased.customer_id is not null as has_bought_product
    from {{ 'affected' if since is not none else 'reviews' }} as reviews
    left join by_account on reviews.review_id = by_account.review_id
    left join by_ip on reviews.review_id = by_ip.review_id
    left join by_text on lower(reviews.review_text) is not distinct from by_text.text_key
    left join customers on reviews.customer_id = customers.customer_id
    left join {{ 'affected_purchases' if since is not none else 'purchased' }} as purchased
        on reviews.customer_id = purchased.customer_id
        and reviews.product_id = purchased.product_id

),

flagged as (

    select
        *,
        reviews_by_account_last_hour >= 3 or reviews_by_ip_last_hour >= 3 as is_burst,
        not has_bought_product as is_never_bought,
        rating in (1, 5)
            and customer_created_at is not null
            and reviewed_at < customer_created_at + interval 7 day
            as is_new_account_extreme,
        review_text is not null and reviews_with_same_text > 1 as is_duplicate_text
    from signals

),

final as (

    select
        -- ids
        review_id,
        product_id,
        customer_id,

        -- attributes
        review_text,
        author_ip,
        is_verified_author,
        is_burst,
        is_never_bought,
        is_new_account_extreme,
        is_duplicate_text,
        list_filter([
            case when is_burst then 'burst of reviews from one account or IP' end,
            case when is_never_bought then 'reviewer never bought the product' end,
            case when is_new_account_extreme then 'extreme rating from a new account' end,
            case when is_duplicate_text then 'text duplicated in another review' end
        ], reason -> reason is not null) as fraud_reasons,

        -- numbers
        rating,
        cast(
            0.35 * is_burst::int + 0.25 * is_never_bought::int
            + 0.20 * is_new_account_extreme::int + 0.20 * is_duplicate_text::int
            as decimal(3, 2)
        ) as fraud_score,

        -- timestamps
        reviewed_at,
        cast(reviewed_at as date) as review_date,
        customer_created_at,

        -- lineage (where the next incremental build starts from)
        _snapshot_id

    from flagged

),

scored as (

    select *, fraud_score >= 0.5 as is_suspected_fraud from final

)

{{ replace_keys_rows('review_id', since, now, final='scored') }}
