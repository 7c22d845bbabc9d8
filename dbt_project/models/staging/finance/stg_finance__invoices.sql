with

source as (

    select * from {{ source('finance', 'invoices') }}

),

renamed as (

    select
        -- ids
        sha256 as invoice_document_id,
        nullif(regexp_extract(text, 'INVOICE ([A-Z0-9-]+)', 1), '') as invoice_number,

        -- attributes
        file_name,
        nullif(trim(regexp_extract(text, 'Supplier: ([^\n]+)', 1)), '') as supplier_name,
        extraction_error,
        extraction_error is not null as needs_manual_review,
        original_key,

        -- numbers
        cast(
            nullif(replace(regexp_extract(text, 'Total: ([0-9.,]+)', 1), ',', ''), '')
            as decimal(12, 2)
        ) as total_amount,

        -- lineage
        _load_id,
        _ingested_at

    from source

),

final as (

    select * from renamed
    {{ latest_version('invoice_document_id', '_ingested_at desc') }}

)

select * from final
