"""The two boto3 contenders, as a command: `python -m bench.boto3_upload MODE PATH BUCKET PREFIX`.

- `threads`: a pool of 8 threads; a file up to 20 MiB is one `put_object`, a larger one a
  multipart upload of 20 MiB parts (read into memory) whose `upload_part` calls share the pool
  with every other file's requests.
- `upload_file`: `client.upload_file` for one file; for a folder, the s3transfer manager that
  `upload_file` runs on, with every file queued at once (its defaults: 10 threads, 8 MiB parts
  from 8 MiB on).

PATH is a file (sent as PREFIX/NAME) or a folder (each file as PREFIX/RELATIVE/PATH). The keys
and the endpoint come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`), as for any boto3 program.
"""

from __future__ import annotations

import argparse
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
THREADS = 8
PART_SIZE = 20 * MiB


def files_of(path: Path, prefix: str) -> list[tuple[Path, str]]:
    """(file, key) of every file to send."""
    if path.is_file():
        return [(path, f"{prefix}/{path.name}")]
    return [
        (file, f"{prefix}/{file.relative_to(path).as_posix()}")
        for file in sorted(path.rglob("*"))
        if file.is_file()
    ]


def client(pool: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", config=Config(s3={"addressing_style": "path"}, max_pool_connections=pool)
    )


def send_with_threads(s3: Any, bucket: str, files: list[tuple[Path, str]]) -> None:
    def put(path: Path, key: str) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    def part(path: Path, key: str, upload_id: str, number: int) -> dict[str, Any]:
        with open(path, "rb") as handle:
            handle.seek((number - 1) * PART_SIZE)
            body = handle.read(PART_SIZE)
        answer = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {
            k: v
            for k, v in (
                ("PartNumber", number),
                ("ETag", answer["ETag"]),
                ("ChecksumCRC32", answer.get("ChecksumCRC32")),
            )
            if v is not None
        }

    multipart: list[tuple[str, str, list[Future[dict[str, Any]]]]] = []
    with ThreadPoolExecutor(THREADS) as pool:
        singles = []
        for path, key in files:
            size = path.stat().st_size
            if size <= PART_SIZE:
                singles.append(pool.submit(put, path, key))
                continue
            upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            count = -(-size // PART_SIZE)
            multipart.append(
                (
                    key,
                    upload_id,
                    [
                        pool.submit(part, path, key, upload_id, n)
                        for n in range(1, count + 1)
                    ],
                )
            )
        for future in singles:
            future.result()
        for key, upload_id, parts in multipart:
            s3.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [p.result() for p in parts]},
            )


def send_with_upload_file(s3: Any, bucket: str, files: list[tuple[Path, str]]) -> None:
    if len(files) == 1:
        path, key = files[0]
        s3.upload_file(str(path), bucket, key)
        return
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    with create_transfer_manager(s3, TransferConfig()) as manager:
        futures = [manager.upload(str(path), bucket, key) for path, key in files]
        for future in futures:
            future.result()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["threads", "upload_file"])
    parser.add_argument("path", type=Path)
    parser.add_argument("bucket")
    parser.add_argument("prefix")
    args = parser.parse_args()
    files = files_of(args.path, args.prefix)
    if args.mode == "threads":
        send_with_threads(client(THREADS + 2), args.bucket, files)
    else:
        send_with_upload_file(client(10 + 2), args.bucket, files)


if __name__ == "__main__":
    main()
