-- One row per review, with fraud flags explained by rule and a score.
-- Rules: a burst (3+ reviews in an hour from one account or one IP), a review of a product
-- the reviewer never bought, an extreme rating (1 or 5) from an account younger than 7
-- days, and text that appears in another review.
with

reviews as (

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

signals as (

    select
        reviews.*,
        customers.created_at as customer_created_at,
        count(*) over (
            partition by reviews.customer_id order by reviews.reviewed_at
            range between interval 1 hour preceding and current row
        ) as reviews_by_account_last_hour,
        count(*) over (
            partition by reviews.author_ip order by reviews.reviewed_at
            range between interval 1 hour preceding and current row
        ) as reviews_by_ip_last_hour,
        count(*) over (partition by lower(reviews.review_text)) as reviews_with_same_text,
        purchased.customer_id is not null as has_bought_product
    from reviews
    left join customers on reviews.customer_id = customers.customer_id
    left join purchased
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
        cast(reviewed_at as date) as review_date

    from flagged

)

select *, fraud_score >= 0.5 as is_suspected_fraud from final
