with

source as (

    select * from {{ source('support', 'tickets') }}

),

renamed as (

    select
        -- ids
        sha256 as ticket_document_id,
        cast(nullif(regexp_extract(text, 'Order: ([0-9]+)', 1), '') as bigint) as order_id,

        -- attributes
        file_name,
        nullif(trim(regexp_extract(text, 'Subject: ([^\n]+)', 1)), '') as subject,
        text as ticket_text,
        extraction_error,
        original_key,

        -- lineage
        _load_id,
        _ingested_at

    from source

),

final as (

    select * from renamed
    {{ latest_version('ticket_document_id', '_ingested_at desc') }}

)

select * from final
