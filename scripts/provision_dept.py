#!/usr/bin/env python3
"""Provision a department's broker user, permissions and HTTP token (services.provision).

    scripts/provision_dept.py 511322-scjg [--password P] [--rotate-token] [--json]

Reads RABBIT_MGMT_URI (default http://guest:guest@127.0.0.1:15672), AMQP_URI (its path is the
vhost, default '/'), MONGO_URI and DB_PREFIX from the environment. Safe to re-run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.provision import ProvisionError, describe, provision_dept  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="为部门开通消息服务用户、权限和 HTTP 访问令牌（可重复执行）")
    parser.add_argument("dept", help="部门代码，如 511322-scjg（同时作为消息服务用户名）")
    parser.add_argument("--password", help="设置或重置该用户的密码（新用户不指定则随机生成）")
    parser.add_argument("--rotate-token", action="store_true", help="轮换 HTTP 访问令牌（旧令牌立即失效）")
    parser.add_argument("--mgmt-uri", help="RabbitMQ 管理接口地址（默认取 RABBIT_MGMT_URI）")
    parser.add_argument("--amqp-uri", help="AMQP 地址，其路径为虚拟主机（默认取 AMQP_URI）")
    parser.add_argument("--json", action="store_true", help="以 JSON 输出结果")
    args = parser.parse_args(argv)
    try:
        result = provision_dept(args.dept, args.password, rotate_token=args.rotate_token,
                                mgmt_uri=args.mgmt_uri, amqp_uri=args.amqp_uri)
    except ProvisionError as exc:
        print(f"开通失败：{exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), ensure_ascii=False) if args.json else describe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
